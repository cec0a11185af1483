package testutil

import (
	"testing"

	"github.com/berthd/berthd/volume"
	"github.com/berthd/berthd/volume/drivers/testsuite"
)

func TestFakeDriverContract(t *testing.T) {
	testsuite.Run(t, func(t *testing.T) volume.Driver { return NewFakeDriver("fake") })
}
