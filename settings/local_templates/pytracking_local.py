# Written by the MKDNet plugin's install.sh; yours to edit (install.sh never overwrites this file).
from pytracking.evaluation.environment import EnvSettings


def local_env_settings():
    settings = EnvSettings()

    # Set your local paths here; every setting not listed keeps pytracking's default.
    settings.network_path = '@WORKSPACE@/networks/'    # Where tracking networks are stored.
    settings.results_path = '@WORKSPACE@/tracking_results/'    # Where to store tracking results.
    settings.segmentation_path = '@WORKSPACE@/segmentation_results/'
    settings.result_plot_path = '@WORKSPACE@/result_plots/'
    settings.latot_path = ''    # LaTOT root: <latot_path>/<sequence>/img/*.jpg and <sequence>.txt

    return settings
