"""An example scenario package for blkrace, found through its entry points."""
