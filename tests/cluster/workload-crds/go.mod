// Pins the modules of Argo Rollouts, Knative Serving and KEDA only to bring
// their CRDs into the module cache for the e2e tests of workload kinds:
// scripts/workload-crds.sh prints where they are.
module palisade.local/tests/cluster/workload-crds

go 1.26.0

require (
	github.com/argoproj/argo-rollouts v1.8.3
	github.com/kedacore/keda/v2 v2.17.0
	knative.dev/serving v0.46.0
)
