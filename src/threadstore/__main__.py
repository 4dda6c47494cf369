from threadstore.cli import main

raise SystemExit(main())
