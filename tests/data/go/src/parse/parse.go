package parse

import "strings"

// Words splits on spaces.
func Words(s string) []string {
   return strings.Fields(s)
}
