// placeholder: replaced by the recommendation service
export {};
