"""The whole pipeline on synthetic data, in a couple of minutes on a laptop CPU.

    python -m pytracking_plugins.demo [--sequences 4] [--frames 40] [--folder workspace/demo]

1. writes synthetic tiny-object sequences in the LaTOT layout (named after the first test-split sequences);
2. tracks them with stock Super-DiMP (``dimp super_dimp``) and MKDNet (``mkdnet mkdnet``) through pytracking's own
   ``Tracker`` / ``run_dataset``;
3. scores both under the LaTOT protocol and writes the plots, the Markdown report and a JSON file.

Everything goes under the demo folder (default ``workspace/demo``): pytracking's environment settings are pointed
there for this process only, so your networks, results and plots are never touched. The networks are yours when your
network folder has them (``super_dimp.pth.tar`` from pytracking's model zoo, ``mkdnet.pth.tar`` from training);
otherwise the demo saves randomly initialised ones and says so loudly: the pipeline runs, the scores mean nothing.
"""
import argparse
import os
import sys
from typing import List, Optional, Sequence

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETWORKS = {'dimp': ('super_dimp', 'super_dimp.pth.tar'), 'mkdnet': ('mkdnet', 'mkdnet.pth.tar')}


def _point_pytracking_at(folder: str) -> List[str]:
    """Makes pytracking's env_settings() return paths under ``folder``; returns the user's network folders."""
    from pytracking_plugins.environment import use_local_settings
    from pytracking_plugins.network_files import network_folders
    user_networks = network_folders()
    use_local_settings(pytracking=dict(
        network_path=os.path.join(folder, 'networks'), results_path=os.path.join(folder, 'tracking_results'),
        segmentation_path=os.path.join(folder, 'segmentation_results'),
        result_plot_path=os.path.join(folder, 'result_plots'), latot_path=os.path.join(folder, 'latot')))
    return user_networks


def _provide_networks(network_dir: str, user_networks: List[str]) -> List[str]:
    """Links the user's networks into the demo folder, or saves random ones; returns the names made up."""
    import torch
    from ltr_plugins.models.super_dimp import build_super_dimp, save_tracking_network
    os.makedirs(network_dir, exist_ok=True)
    random_ones = []
    for seed, (_, file_name) in enumerate(NETWORKS.values()):
        target = os.path.join(network_dir, file_name)
        if os.path.lexists(target):
            continue
        mine = next((p for p in (os.path.join(d, file_name) for d in user_networks) if os.path.isfile(p)), '')
        if mine:
            os.symlink(os.path.abspath(mine), target)
            continue
        torch.manual_seed(seed)
        save_tracking_network(build_super_dimp(backbone_pretrained=False), target,
                              net_info='randomly initialised by pytracking_plugins.demo')
        random_ones.append(file_name)
    return random_ones


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m pytracking_plugins.demo', description=__doc__.split('\n')[0])
    parser.add_argument('--folder', default=os.path.join(PROJECT_ROOT, 'workspace', 'demo'),
                        help='where everything is written (default: workspace/demo)')
    parser.add_argument('--sequences', type=int, default=4, help='number of synthetic sequences (default 4)')
    parser.add_argument('--frames', type=int, default=40, help='frames per sequence (default 40)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.sequences < 1 or args.frames < 2:
        parser.error('--sequences must be at least 1 and --frames at least 2')

    folder = os.path.abspath(args.folder)
    user_networks = _point_pytracking_at(folder)

    from pytracking.evaluation import Tracker
    from pytracking.evaluation.running import run_dataset
    from pytracking_plugins import latot_data, synthetic
    from pytracking_plugins.analysis import latot
    from pytracking_plugins.evaluation.latotdataset import LaTOTDataset

    data_root = os.path.join(folder, 'latot')
    names = latot_data.split_sequence_names('test')[:args.sequences]
    new = [n for n in names if not os.path.isdir(os.path.join(data_root, n))]
    if new:
        synthetic.write_dataset(data_root, names=new, num_frames=args.frames, seed=args.seed)
    print('Synthetic LaTOT sequences in {}: {}'.format(data_root, ', '.join(names)))

    random_ones = _provide_networks(os.path.join(folder, 'networks'), user_networks)
    if random_ones:
        print('\n' + '!' * 100)
        print('!! {} not found in your network folder ({}): the demo uses RANDOMLY INITIALISED networks.'.format(
            ' and '.join(random_ones), ', '.join(user_networks) or 'no local.py'))
        print('!! The pipeline runs end to end; the scores below mean nothing. See the README for the weights.')
        print('!' * 100 + '\n')

    dataset = LaTOTDataset(split='test', allow_missing=True, root=data_root)
    trackers = [Tracker(name, parameter, display_name=label)
                for (name, (parameter, _)), label in zip(NETWORKS.items(), ('Super-DiMP', 'MKDNet'))]
    run_dataset(dataset.get_sequence_list(), trackers)

    evaluation = latot.evaluate(trackers, dataset, report_name='demo', output_dir=os.path.join(folder, 'report'),
                                force_evaluation=True)
    latot.print_summary(evaluation)
    report_dir = os.path.join(folder, 'report')
    latot.write_report(evaluation, report_dir)
    latot.write_json(evaluation, os.path.join(report_dir, 'scores.json'))
    print('\nReport, plots and scores.json in {}'.format(report_dir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
