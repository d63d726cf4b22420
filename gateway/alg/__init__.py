"""Application-level gateways: data-plane services that read and rewrite a connection's payload.

Where this sits: processes of their own on the service transport
(``io/service.py``).  The SR tags a connection for an ALG when it is created
(its server port is one the ALG registered); from then on every segment of it
with payload is punted, held by the datapath (``stages/sr.AlgHold``) and
carried on when it returns, with the connection's sequence offsets
(``services/seqadj.py``); what the payload announces becomes an expectation
(``services/expect.py``).  ``ftp.py`` is the FTP ALG.
"""
