from tailbench.entry import main

raise SystemExit(main())
