# Written by the MKDNet plugin's install.sh; yours to edit (install.sh never overwrites this file).
class EnvironmentSettings:
    def __init__(self):
        self.workspace_dir = '@WORKSPACE@'    # Base directory for saving network checkpoints.
        self.tensorboard_dir = self.workspace_dir + '/tensorboard/'    # Directory for tensorboard files.
        self.pretrained_networks = '@WORKSPACE@/networks/'    # super_dimp.pth.tar (MKDNet's teacher); pytracking's network folder too.
        self.pregenerated_masks = ''
        self.lasot_dir = ''
        self.got10k_dir = ''
        self.trackingnet_dir = ''
        self.coco_dir = ''
        self.lvis_dir = ''
        self.sbd_dir = ''
        self.imagenet_dir = ''
        self.imagenetdet_dir = ''
        self.ecssd_dir = ''
        self.hkuis_dir = ''
        self.msra10k_dir = ''
        self.davis_dir = ''
        self.youtubevos_dir = ''
        self.lasot_candidate_matching_dataset_path = ''
        self.latot_dir = ''    # LaTOT root: <latot_dir>/<sequence>/img/*.jpg and <sequence>.txt
