"""``python -m ltr_plugins.synthetic``: see :mod:`ltr_plugins.synthetic.command_line`."""
import sys

from ltr_plugins.synthetic.command_line import main

if __name__ == '__main__':
    sys.exit(main())
