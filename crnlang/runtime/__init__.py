"""What every generated solver module links against: networks, samplers, optimisers, stepping."""
