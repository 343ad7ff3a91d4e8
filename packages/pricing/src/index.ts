export { PriceTable, loadPriceTable, type ModelPrice, type TokenUsage, type CallCost } from "./price-table.js";
