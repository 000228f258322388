// Starts real etcd for the tests: written next.
