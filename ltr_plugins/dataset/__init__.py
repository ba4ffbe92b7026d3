from .latot import LaTOT
