//go:build tools

// The command this module builds; the import pins its dependencies in go.sum.
package tools

import (
	_ "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
)
