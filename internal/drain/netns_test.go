package drain

import (
	"testing"

	"github.com/convoy-dev/convoy/internal/netnstest"
)

func TestMain(m *testing.M) { netnstest.Main(m) }
