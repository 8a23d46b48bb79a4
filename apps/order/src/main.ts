// placeholder: replaced by the order service
export {};
