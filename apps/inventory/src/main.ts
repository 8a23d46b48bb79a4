// placeholder: replaced by the inventory service
export {};
