/**
 * The Actions Extend Commerce documents (seed page, "Example - complete list"). Routing accepts any
 * Action; this list only lets rule validation warn about likely typos.
 */
export const KNOWN_ACTIONS: readonly string[] = [
  "AvailableBalanceChanged",
  "BalanceChanged",
  "CustomerChanged",
  "CustomerCreated",
  "CustomerInvoiceChanged",
  "CustomerInvoiceCreated",
  "OfferChanged",
  "OfferCreated",
  "OrderCancelled",
  "OrderCreated",
  "OrderDeliveryDataChanged",
  "OrderPicked",
  "OrderReserved",
  "PickingStarted",
  "PriceListWebHook",
  "ProductChanged",
  "ProductCreated",
  "PurchaseCancelled",
  "PurchaseCreated",
  "PurchaseDelivered",
  "PurchasePartiallyDelivered",
];
