from .mkdnet import MKDNet


def get_tracker_class():
    return MKDNet
