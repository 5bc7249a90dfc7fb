# A source file referenced as a path (copied to the store) by the plugin tests.
"some data"
