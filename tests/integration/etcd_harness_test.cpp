// Tests of the etcd test harness: written next.
