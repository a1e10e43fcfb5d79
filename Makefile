.PHONY: demo demo-down

# Builds Palisade, starts the real test cluster, installs the CRDs, RBAC and
# the samples in examples/, runs the operator and prints the reports.
# Leaves everything running until `make demo-down`.
demo:
	scripts/demo.sh up

demo-down:
	scripts/demo.sh down
