from tailbench.cli import main

raise SystemExit(main())
