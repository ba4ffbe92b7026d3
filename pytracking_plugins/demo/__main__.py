import sys

from pytracking_plugins.demo.pipeline import main

sys.exit(main())
