from .mkdnet import JointOptimizer, MKDNetTrainer
