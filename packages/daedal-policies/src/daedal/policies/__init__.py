"""daedal-policies: DAEDAL and the published decoders as composable policies."""
