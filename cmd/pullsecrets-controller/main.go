// Command pullsecrets-controller runs the ClusterPullSecret controller.
package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/pullsecrets/pullsecrets/internal/manager"
)

func main() {
	cmd := manager.NewCommand()
	if err := cmd.ExecuteContext(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}
