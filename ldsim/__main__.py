from ldsim.cli import main

raise SystemExit(main())
