// SPDX-License-Identifier: MIT
// Test contracts for cointrail's anvil integration tests. Compiled by
// scripts/compile-erc20.mjs (npm solc 0.8.28) into contracts.json beside this file.
pragma solidity ^0.8.20;

/// A minimal ERC-20 (EIP-20): the whole supply goes to the deployer.
contract Token {
    string public name;
    string public symbol;
    uint8 public decimals;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 supply) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        totalSupply = supply;
        balanceOf[msg.sender] = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= value, "allowance");
        allowance[from][msg.sender] = allowed - value;
        _move(from, to, value);
        return true;
    }

    function _move(address from, address to, uint256 value) internal {
        require(balanceOf[from] >= value, "balance");
        balanceOf[from] -= value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}

/// Pays ether on to several recipients inside one transaction: contract-internal transfers.
contract Splitter {
    function split(address payable[] calldata to) external payable {
        uint256 share = msg.value / to.length;
        for (uint256 i = 0; i < to.length; i++) {
            (bool ok, ) = to[i].call{value: share}("");
            require(ok, "send");
        }
        uint256 rest = msg.value - share * to.length;
        if (rest > 0) {
            (bool ok, ) = payable(msg.sender).call{value: rest}("");
            require(ok, "rest");
        }
    }

    /// A call that fails after a value-carrying inner call: nothing of it may count.
    function splitThenFail(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok && false, "always fails");
    }
}

/// Swaps one token for another at 1:1 from its own reserve (the laundering scenario's swap).
contract Swap {
    Token public immutable tokenIn;
    Token public immutable tokenOut;

    constructor(Token in_, Token out_) {
        tokenIn = in_;
        tokenOut = out_;
    }

    function swap(uint256 amount) external {
        require(tokenIn.transferFrom(msg.sender, address(this), amount), "in");
        require(tokenOut.transfer(msg.sender, amount), "out");
    }
}
