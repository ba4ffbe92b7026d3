from .mkdnet import MKDNetActor
