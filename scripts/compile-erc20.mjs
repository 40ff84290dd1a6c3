// Compile tests/data/eth/Contracts.sol with solc-js into tests/data/eth/contracts.json
// (ABI + creation bytecode per contract), the artefact the anvil integration tests deploy.
//
//   mkdir -p /tmp/solcjs && (cd /tmp/solcjs && npm install solc@0.8.28)
//   NODE_PATH=/tmp/solcjs/node_modules node scripts/compile-erc20.mjs
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(join(process.env.NODE_PATH || process.cwd(), "noop.js"));
const solc = require("solc");
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const sourcePath = join(root, "tests/data/eth/Contracts.sol");
const input = {
  language: "Solidity",
  sources: { "Contracts.sol": { content: readFileSync(sourcePath, "utf8") } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  console.error(errors.map((e) => e.formattedMessage).join("\n"));
  process.exit(1);
}
const contracts = {};
for (const [name, c] of Object.entries(output.contracts["Contracts.sol"])) {
  contracts[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
}
const doc = { compiler: "solc-js " + solc.version(), source: "Contracts.sol", contracts };
writeFileSync(join(root, "tests/data/eth/contracts.json"), JSON.stringify(doc, null, 1) + "\n");
console.log("wrote tests/data/eth/contracts.json:", Object.keys(contracts).join(", "));
