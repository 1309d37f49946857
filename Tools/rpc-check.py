#!/usr/bin/env python3
"""Reads a Faultline chain through a standard Ethereum client library (web3.py).

Usage: Tools/rpc-check.py URL [URL ...]   e.g. http://127.0.0.1:PORT (an rpc node or a gateway)

For each URL: chain id, block number, the latest block and the one before it (with full
transactions), a balance and a nonce, a transaction receipt when a recent block has one, and a
method the node does not serve (which must come back as a JSON-RPC error, not a crash). Prints one
line per check and exits 1 on the first failure. Needs `pip install web3`.
"""
import sys

try:
    from web3 import Web3
    from web3.exceptions import Web3RPCError
except ImportError:
    sys.exit("rpc-check: web3.py is missing; install it with `pip install web3`")


def check(url):
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 5}))
    chain_id = w3.eth.chain_id
    assert isinstance(chain_id, int) and chain_id > 0, f"chain id {chain_id!r}"
    assert int(w3.net.version) == chain_id, f"net_version {w3.net.version} != chain id {chain_id}"
    number = w3.eth.block_number
    assert number >= 1, f"block number {number}"
    latest = w3.eth.get_block("latest")
    assert latest["number"] >= number, f"latest block {latest['number']} below block number {number}"
    parent = w3.eth.get_block(latest["number"] - 1, full_transactions=True)
    assert parent["hash"] == latest["parentHash"], "the latest block's parentHash is not its parent's hash"
    assert w3.eth.get_block(latest["hash"])["number"] == latest["number"], "block by hash disagrees"
    print(f"  {url}: chain id {chain_id}, block number {number}, block {latest['number']} "
          f"({len(latest['transactions'])} txs) hash {latest['hash'].hex()[:16]}…, parent ok")
    receipt_seen = False
    for height in range(latest["number"], max(latest["number"] - 40, 0), -1):
        block = w3.eth.get_block(height, full_transactions=True)
        if not block["transactions"]:
            continue
        tx = block["transactions"][0]
        receipt = w3.eth.get_transaction_receipt(tx["hash"])
        assert receipt["blockNumber"] == height, f"receipt block {receipt['blockNumber']} != {height}"
        assert receipt["status"] in (0, 1)
        sender = tx["from"]
        balance = w3.eth.get_balance(sender)
        nonce = w3.eth.get_transaction_count(sender)
        assert nonce >= 1, f"a sender of a committed transfer has nonce {nonce}"
        print(f"  {url}: tx {tx['hash'].hex()[:16]}… in block {height} status {receipt['status']}; "
              f"sender {sender} balance {balance} nonce {nonce}")
        receipt_seen = True
        break
    if not receipt_seen:
        print(f"  {url}: no transaction in the last 40 blocks (no load?): receipts not checked")
    try:
        response = w3.provider.make_request("eth_call", [{}, "latest"])
    except Web3RPCError as error:
        response = error.rpc_response
    code = (response.get("error") or {}).get("code")
    assert code == -32601, f"eth_call should be refused with -32601, got {response}"
    print(f"  {url}: an unserved method answers JSON-RPC error -32601")
    return receipt_seen


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for url in sys.argv[1:]:
        try:
            check(url)
        except Exception as error:  # any failure is reported with the URL it came from
            print(f"rpc-check: {url}: {type(error).__name__}: {error}")
            sys.exit(1)
    print("rpc-check: ok")


if __name__ == "__main__":
    main()
