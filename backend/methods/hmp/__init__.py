"""Method `hmp`: hands from video with a learned hand motion prior (HMP, Duran et al., WACV 2024)."""
