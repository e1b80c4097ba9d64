// Each test starts real processes on a 2-core machine; running them one at a time keeps the
// propagation timings honest.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
