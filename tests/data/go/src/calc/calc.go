package calc

// Add adds.
func Add(a, b int) int { return a + b }

// Div divides, or returns 0 for a zero divisor.
func Div(a, b int) int {
	if b == 0 {
		return 0
	}
	return a / b
}

// Unused is never tested.
func Unused(n int) int {
	total := 0
	for i := 0; i < n; i++ {
		total += i
	}
	return total
}
