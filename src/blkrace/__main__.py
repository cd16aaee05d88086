from blkrace.cli import main

main()
