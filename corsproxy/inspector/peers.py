"""placeholder"""


class Peers: ...
