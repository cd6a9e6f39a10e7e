from genuine.cli import main

raise SystemExit(main())
