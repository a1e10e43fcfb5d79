// Pins the OpenReports API module only to bring its CRDs
// (config/crd/*.yaml) into the module cache for the e2e tests:
// scripts/openreports-crds.sh prints where they are.
module palisade.local/tests/cluster/openreports

go 1.26.0

require github.com/openreports/reports-api v0.2.1
