// The user-assigned managed identity that the Function App runs as. It reads the deployment
// package and host state from storage, resolves the Key Vault references and reads the
// secrets, and sends telemetry to Application Insights; rbac.bicep grants each of those roles.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region of the identity.')
param location string

@description('Tags applied to the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
