from . import distributed
from .mkdnet import JointOptimizer, MKDNetTrainer
