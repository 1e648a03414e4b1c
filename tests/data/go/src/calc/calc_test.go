package calc

import (
	"os"
	"testing"
	"time"
)

func TestAdd(t *testing.T) {
	if Add(1, 2) != 3 {
		t.Fatal("add")
	}
	if Div(4, 2) != 2 {
		t.Fatal("div")
	}
}

func BenchmarkAdd(b *testing.B) {
	slow := os.Getenv("SLOW") != ""
	for i := 0; i < b.N; i++ {
		if slow {
			time.Sleep(20 * time.Microsecond)
		}
		Add(i, i)
	}
}
