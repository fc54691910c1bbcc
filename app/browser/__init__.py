"""The dataset browser: HTML pages whose scripts read the data from the /v1 API."""
