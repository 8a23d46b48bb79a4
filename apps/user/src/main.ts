// placeholder: replaced by the user service
export {};
