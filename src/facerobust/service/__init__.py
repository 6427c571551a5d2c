"""The access-control gate (``facerobust serve``) and its black-box HTTP attack client
(``facerobust attack-gate``). See :mod:`facerobust.service.app` for the endpoints."""
