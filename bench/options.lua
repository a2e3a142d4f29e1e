-- wrk script: send CORS preflights (OPTIONS) instead of GETs.
wrk.method = "OPTIONS"
