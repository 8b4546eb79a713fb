"""The use cases: one module each (start, reports, sync, imports, annotate, reconcile, queries).

Each is a few short commands over one store (`store.LedgerStore`): load what the command needs,
ask the domain's rules for a typed Decision, hand it to the aggregates, save in one transaction
(again on fresh state if a concurrent writer got there first). `ledger.Ledger` bundles them.
They call no outside system: adapters turn what S3, RunPod and legacy files say into values.
"""
