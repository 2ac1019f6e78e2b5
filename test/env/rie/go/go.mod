// Wrapper module: builds AWS's Lambda Runtime Interface Emulator (cmd/aws-lambda-rie) from Go modules,
// pinned, for the test that runs the worker SDK under AWS's own runtime (test/env/rie/build-rie.sh,
// docs/rie.md). The Go module proxy serves the emulator only as this pseudo-version (commit bef5c4ba774d,
// 2026-10-30); its release tags (v1.x) are not valid module versions there.
module lambdataskpool.local/testenv/rie

go 1.26.6

require github.com/aws/aws-lambda-runtime-interface-emulator v0.0.0-20261030222936-bef5c4ba774d

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/go-chi/chi v1.5.5 // indirect
	github.com/go-chi/chi/v5 v5.4.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jessevdk/go-flags v1.5.0 // indirect
	github.com/orcaman/concurrent-map v1.0.0 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	github.com/santhosh-tekuri/jsonschema/v5 v5.3.1 // indirect
	github.com/sirupsen/logrus v1.9.3 // indirect
	github.com/stretchr/objx v0.5.2 // indirect
	github.com/stretchr/testify v1.9.0 // indirect
	golang.org/x/sys v0.14.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
