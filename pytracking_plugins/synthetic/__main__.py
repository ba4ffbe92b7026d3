"""``python -m pytracking_plugins.synthetic``: see :mod:`pytracking_plugins.synthetic.command_line`."""
import sys

from pytracking_plugins.synthetic.command_line import main

if __name__ == '__main__':
    sys.exit(main())
