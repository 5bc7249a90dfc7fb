{ stateDir }:
{ broken = { port = 80; }; }
