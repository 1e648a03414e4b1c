package parse

import "testing"

func TestWords(t *testing.T) {
	if len(Words("a b")) != 2 {
		t.Fatal("words")
	}
}
