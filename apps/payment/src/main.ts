// placeholder: replaced by the payment service
export {};
