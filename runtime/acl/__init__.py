"""RocketMQ's plain ACL (ACL 1.0, ``aclEnable=true`` with a ``plain_acl.yml``).

- ``signature``: how a request is signed (HMAC-SHA1 over its sorted header values and body), for
  the broker's check and our client's ``SessionCredentials``.
- ``addresses``: ``whiteRemoteAddress`` patterns.
- ``resources``: the topics and groups a request needs, and with which permission.
- ``plain``: the accounts file and the check of one request against it.
"""
